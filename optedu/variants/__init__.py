"""Comparison variants: rules as another framework, a paper or a popular source writes them.

Each is a small function labelled as a variant, tested, and run by a chapter beside the rule that
torch (and optedu's own rule) implements, so the difference is executed rather than asserted.
Nothing here is used by optedu's optimizers.
"""
