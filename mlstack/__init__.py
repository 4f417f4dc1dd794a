"""mlstack: an ML platform on AWS and EKS, as Pulumi components with typed environments."""

__version__ = "0.1.0"
