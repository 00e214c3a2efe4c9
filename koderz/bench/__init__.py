"""BigCodeBench and LiveCodeBench judging, each as its own harness judges (issue 27, in progress):
their judges give per-test detail (``base.Judged``); putting them behind ``koderz.evaluators.Evaluator``
so that runs use them is the next step."""
