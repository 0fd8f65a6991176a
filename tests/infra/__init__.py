"""Infrastructure tests: synthesize the CDK app once, then assert on the template, cdk-nag and cfn-lint."""
