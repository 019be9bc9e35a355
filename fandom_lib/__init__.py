"""fandom_lib: the thin library behind the fan-action contribution reports (RUDDER-style return decomposition)."""

import warnings

# captum imports tqdm.auto, which warns in kernels without ipywidgets; the reports need no widgets.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
