"""Settings every program shares (config/settings.py): the bottom layer, which imports no
project package."""
