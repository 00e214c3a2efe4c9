"""Model layer: one async interface (base), providers chosen by ``registry.build_model``,
token costs (pricing) and the speed test. SDKs are imported only by the provider in use."""
