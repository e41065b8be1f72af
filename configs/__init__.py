"""Config profiles (``<name>.yaml``), shipped as package data ``liger_core.configs``."""
