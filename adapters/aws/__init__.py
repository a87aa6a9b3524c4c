"""AWS adapters: DynamoDB, EventBridge and Secrets Manager behind the domain ports.

Every adapter takes an optional boto3 client so that tests (moto, Stubber) and the composition
root decide how clients are built; a default client is created on first use only.
"""
