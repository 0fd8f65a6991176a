"""Code every function of the Rekognition pipeline shares: settings, the task table, the
operation catalogue, media rules, output layout and the video slots."""
