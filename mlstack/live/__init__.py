"""Live AWS tooling: commands that read or change a real account with boto3 (bootstrap, preflight, audit).

Nothing here is imported by the Pulumi program: the program runs offline under mocks, these run around it.
"""
