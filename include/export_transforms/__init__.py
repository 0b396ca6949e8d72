"""Destination transforms shipped as examples (``transform: "export_transforms.<module>:<function>"``)."""
