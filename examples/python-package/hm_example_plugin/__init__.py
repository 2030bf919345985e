"""Carrier of an hm plugin library (``lib/example.so``). hm finds it through the
``hm.plugins`` entry point without importing this package; importing it is a bug."""

raise ImportError("hm_example_plugin only carries a native plugin; hm must not import it")
