"""gitops-checker: policy and drift checks for Kubernetes GitOps repositories."""

__version__ = "0.1.0"
