"""Only the optional C accelerator; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds, and the engine uses the
ahocorasick-rs backend instead (same findings, slower; see compliance/matcher.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "livestream_compliance._native",
            ["compliance/_native.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
