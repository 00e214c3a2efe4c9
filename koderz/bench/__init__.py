"""BigCodeBench and LiveCodeBench judging, each as its own harness judges, behind
``koderz.evaluators.Evaluator`` (``dataset.evaluator=bigcodebench|livecodebench``)."""
