"""Reusable Pulumi ComponentResources that together provision the mlstack platform.

Every component follows one shape: ``Component(name, args, opts=None)``, a three-segment type token
``mlstack:<module>:<Type>``, ``parent=self`` on every child, flat Output attributes mirrored in
``register_outputs``, and no ``pulumi.export``.
"""
