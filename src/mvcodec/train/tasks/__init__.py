"""Built-in training tasks, one module per model kind; importing this package imports (and so registers) them all."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
