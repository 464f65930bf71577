"""The fleet: Outposts and clusters (`inventory`), the GitOps fleet file, naming rules, and EKS discovery."""
