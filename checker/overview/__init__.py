"""Overview across clusters: image inventory, compliance matrix and audit trail (git)."""
