"""The classes a package defines, for tests that check all its types (spec/security.md §3.11)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import protocol


def package_classes(package: ModuleType = protocol) -> list[type]:
    """Every class defined in a module of the package; extras not installed are skipped."""
    classes = []
    for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if module_info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(module_info.name)
        except ImportError:  # an optional extra (video codecs) that is not installed
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                classes.append(cls)
    return classes
