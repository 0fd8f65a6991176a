"""CDK constructs of the Rekognition pipeline: one module per part, composed by ``pipeline_stack``.

The stack derives settings, environment names and IAM actions from the shared layer's package
(``rekpipe_shared``), which the project's packaging installs (``make setup``).
"""
