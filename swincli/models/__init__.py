"""The Swin V1/V2 architecture, its configuration and the registry of named variants."""
