"""SRVP presets: one module per dataset (paper settings) plus small CPU presets."""
