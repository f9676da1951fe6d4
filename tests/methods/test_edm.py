from diffops.methods import METHODS

from .common import MethodContract


class TestEDM(MethodContract):
    method_name = "edm"


def test_every_registered_method_has_a_contract_test():
    import importlib
    import pkgutil

    import tests.methods as pkg
    tested = set()
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"tests.methods.{info.name}")
        tested |= {cls.method_name for cls in vars(module).values()
                   if isinstance(cls, type) and issubclass(cls, MethodContract) and cls.method_name}
    assert set(METHODS) <= tested
