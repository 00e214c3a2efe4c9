"""Benchmark judges behind one small protocol (:class:`koderz.evaluators.base.Evaluator`)."""
