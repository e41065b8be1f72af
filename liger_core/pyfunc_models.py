"""Old home of ``liger_core.platform.pyfunc_models``. Versions registered before the layer
split pickled their pyfunc class under this name; it must keep resolving for them to load."""

from liger_core.platform.pyfunc_models import RecommenderPyfunc, RQVAEPyfunc

__all__ = ["RecommenderPyfunc", "RQVAEPyfunc"]
