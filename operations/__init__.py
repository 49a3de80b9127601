"""Operating the running pipeline: rescore (re-price with a new model), reconcile and the
watchdog (heal what the components cannot), demo (list a few cars, show their prices)."""
