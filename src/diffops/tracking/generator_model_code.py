"""MLflow "model from code" entry: loading the logged model runs this file; nothing is unpickled."""
from mlflow.models import set_model

from diffops.tracking.pyfunc_model import EDMImageGenerator

set_model(EDMImageGenerator())
