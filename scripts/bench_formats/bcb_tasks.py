"""koderz's own BigCodeBench-format tasks: (libs, imports, signature, doc, body, wrong body, tests).

Each entry is small on purpose; ``make_bench_formats.py`` turns them into the dataset's rows
(``complete_prompt``, ``instruct_prompt``, ``code_prompt``, ``test`` with a ``TestCases`` class ...).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    libs: tuple[str, ...]
    imports: str
    signature: str  # "task_func(nums)"
    doc: str  # one paragraph, what it returns
    body: str  # indented 4
    wrong: str  # indented 4: a plausible wrong answer
    tests: str  # test methods, indented 4 (inside class TestCases)
    test_imports: str = ""


S = Spec
TASKS: list[Spec] = [
    # ------------------------------------------------------------------ stdlib
    S(
        ("collections",),
        "from collections import Counter",
        "task_func(words)",
        "Count the words and return the most common word (ties: the first seen).",
        "    return Counter(words).most_common(1)[0][0]\n",
        "    return sorted(words)[0]\n",
        "    def test_basic(self):\n        self.assertEqual(task_func(['b', 'a', 'b']), 'b')\n"
        "    def test_tie(self):\n        self.assertEqual(task_func(['x', 'y']), 'x')\n"
        "    def test_empty(self):\n        with self.assertRaises(IndexError):\n            task_func([])\n",
    ),
    S(
        ("itertools",),
        "import itertools",
        "task_func(items, r)",
        "Return the number of r-combinations of items whose sum is even.",
        "    return sum(1 for c in itertools.combinations(items, r) if sum(c) % 2 == 0)\n",
        "    return sum(1 for c in itertools.permutations(items, r) if sum(c) % 2 == 0)\n",
        "    def test_pairs(self):\n        self.assertEqual(task_func([1, 2, 3, 4], 2), 2)\n"
        "    def test_triples(self):\n        self.assertEqual(task_func([1, 2, 3, 4, 5], 3), 6)\n"
        "    def test_none(self):\n        self.assertEqual(task_func([1], 2), 0)\n",
    ),
    S(
        ("json",),
        "import json",
        "task_func(text)",
        "Parse a JSON object and return its keys sorted, nested keys joined with dots.",
        "    def walk(obj, prefix):\n        for k, v in obj.items():\n            name = prefix + k\n"
        "            if isinstance(v, dict):\n                yield from walk(v, name + '.')\n            else:\n"
        "                yield name\n    return sorted(walk(json.loads(text), ''))\n",
        "    return sorted(json.loads(text))\n",
        "    def test_flat(self):\n        self.assertEqual(task_func('{\"b\": 1, \"a\": 2}'), ['a', 'b'])\n"
        '    def test_nested(self):\n        self.assertEqual(task_func(\'{"a": {"c": 1, "b": {"d": 0}}}\'), [\'a.b.d\', \'a.c\'])\n'
        "    def test_bad(self):\n        with self.assertRaises(ValueError):\n            task_func('{')\n",
    ),
    S(
        ("hashlib",),
        "import hashlib",
        "task_func(data)",
        "Return the hex SHA-256 digest of the UTF-8 string, upper-cased.",
        "    return hashlib.sha256(data.encode('utf-8')).hexdigest().upper()\n",
        "    return hashlib.sha1(data.encode('utf-8')).hexdigest().upper()\n",
        "    def test_empty(self):\n        self.assertTrue(task_func('').startswith('E3B0C442'))\n"
        "    def test_len(self):\n        self.assertEqual(len(task_func('abc')), 64)\n"
        "    def test_upper(self):\n        self.assertEqual(task_func('x'), task_func('x').upper())\n",
    ),
    S(
        ("string", "random"),
        "import random\nimport string",
        "task_func(length, seed=0)",
        "Return a random lowercase string of the given length, seeded with seed.",
        "    rng = random.Random(seed)\n    return ''.join(rng.choice(string.ascii_lowercase) for _ in range(length))\n",
        "    rng = random.Random(seed)\n    return ''.join(rng.choice(string.ascii_letters) for _ in range(length))\n",
        "    def test_length(self):\n        self.assertEqual(len(task_func(12)), 12)\n"
        "    def test_lower(self):\n        self.assertTrue(task_func(200, 3).islower())\n"
        "    def test_seeded(self):\n        self.assertEqual(task_func(8, 5), task_func(8, 5))\n",
    ),
    S(
        ("heapq",),
        "import heapq",
        "task_func(nums, k)",
        "Return the k largest numbers in descending order.",
        "    return heapq.nlargest(k, nums)\n",
        "    return sorted(nums)[:k]\n",
        "    def test_basic(self):\n        self.assertEqual(task_func([5, 1, 9, 3], 2), [9, 5])\n"
        "    def test_all(self):\n        self.assertEqual(task_func([1, 2], 5), [2, 1])\n",
    ),
    S(
        ("statistics",),
        "import statistics",
        "task_func(values)",
        "Return a dict with the mean, median and population stdev of values.",
        "    return {'mean': statistics.mean(values), 'median': statistics.median(values),\n"
        "            'stdev': statistics.pstdev(values)}\n",
        "    return {'mean': statistics.mean(values), 'median': statistics.median(values),\n"
        "            'stdev': statistics.stdev(values)}\n",
        "    def test_values(self):\n        r = task_func([1, 2, 3, 4])\n        self.assertAlmostEqual(r['mean'], 2.5)\n"
        "        self.assertAlmostEqual(r['median'], 2.5)\n        self.assertAlmostEqual(r['stdev'], 1.118033988749895)\n"
        "    def test_single(self):\n        self.assertEqual(task_func([7])['stdev'], 0)\n",
    ),
    S(
        ("functools",),
        "import functools",
        "task_func(n)",
        "Return the n-th Fibonacci number (F(0)=0) using memoisation.",
        "    @functools.lru_cache(maxsize=None)\n    def fib(i):\n        return i if i < 2 else fib(i - 1) + fib(i - 2)\n"
        "    return fib(n)\n",
        "    a, b = 1, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        "    def test_small(self):\n        self.assertEqual([task_func(i) for i in range(7)], [0, 1, 1, 2, 3, 5, 8])\n"
        "    def test_big(self):\n        self.assertEqual(task_func(90), 2880067194370816120)\n",
    ),
    # ------------------------------------------------------------------ numpy
    S(
        ("numpy",),
        "import numpy as np",
        "task_func(matrix)",
        "Return the row sums of a 2-D list as a numpy array.",
        "    return np.asarray(matrix).sum(axis=1)\n",
        "    return np.asarray(matrix).sum(axis=0)\n",
        "    def test_square(self):\n        np.testing.assert_array_equal(task_func([[1, 2], [3, 5]]), [3, 8])\n"
        "    def test_rect(self):\n        np.testing.assert_array_equal(task_func([[1, 2, 3]]), [6])\n"
        "    def test_type(self):\n        self.assertIsInstance(task_func([[1]]), np.ndarray)\n",
    ),
    S(
        ("numpy",),
        "import numpy as np",
        "task_func(values)",
        "Return the values scaled to [0, 1] (min-max); a constant array gives zeros.",
        "    a = np.asarray(values, dtype=float)\n    span = a.max() - a.min()\n"
        "    return np.zeros_like(a) if span == 0 else (a - a.min()) / span\n",
        "    a = np.asarray(values, dtype=float)\n    return (a - a.min()) / (a.max() - a.min())\n",
        "    def test_scale(self):\n        np.testing.assert_allclose(task_func([2, 4, 6]), [0, 0.5, 1])\n"
        "    def test_const(self):\n        np.testing.assert_array_equal(task_func([3, 3]), [0, 0])\n",
    ),
    S(
        ("numpy",),
        "import numpy as np",
        "task_func(n, seed=42)",
        "Return the mean of n standard normal samples drawn with numpy's default_rng(seed), rounded to 6 places.",
        "    return round(float(np.random.default_rng(seed).standard_normal(n).mean()), 6)\n",
        "    return round(float(np.random.default_rng(seed + 1).standard_normal(n).mean()), 6)\n",
        "    def test_repeatable(self):\n        self.assertEqual(task_func(100), task_func(100))\n"
        "    def test_value(self):\n"
        "        self.assertEqual(task_func(1000), round(float(np.random.default_rng(42).standard_normal(1000).mean()), 6))\n",
    ),
    S(
        ("numpy",),
        "import numpy as np",
        "task_func(a, b)",
        "Return the matrix product of two 2-D lists as a list of lists.",
        "    return (np.asarray(a) @ np.asarray(b)).tolist()\n",
        "    return (np.asarray(a) * np.asarray(b)).tolist()\n",
        "    def test_identity(self):\n        self.assertEqual(task_func([[1, 2], [3, 4]], [[1, 0], [0, 1]]), [[1, 2], [3, 4]])\n"
        "    def test_product(self):\n        self.assertEqual(task_func([[1, 2], [3, 4]], [[2, 0], [1, 2]]), [[4, 4], [10, 8]])\n",
    ),
    S(
        ("numpy",),
        "import numpy as np",
        "task_func(values, window)",
        "Return the moving average of values over the window (valid positions only).",
        "    return np.convolve(values, np.ones(window) / window, mode='valid')\n",
        "    return np.convolve(values, np.ones(window) / window, mode='same')\n",
        "    def test_avg(self):\n        np.testing.assert_allclose(task_func([1, 2, 3, 4], 2), [1.5, 2.5, 3.5])\n"
        "    def test_len(self):\n        self.assertEqual(len(task_func(list(range(10)), 3)), 8)\n",
    ),
    S(
        ("numpy",),
        "import numpy as np",
        "task_func(points)",
        "Return the index of the point (rows of x, y) farthest from the origin.",
        "    return int(np.argmax(np.linalg.norm(np.asarray(points, dtype=float), axis=1)))\n",
        "    return int(np.argmin(np.linalg.norm(np.asarray(points, dtype=float), axis=1)))\n",
        "    def test_far(self):\n        self.assertEqual(task_func([[0, 1], [3, 4], [1, 1]]), 1)\n"
        "    def test_first(self):\n        self.assertEqual(task_func([[5, 0], [0, 1]]), 0)\n",
    ),
    S(
        ("numpy",),
        "import numpy as np",
        "task_func(values, threshold)",
        "Return a boolean numpy mask of the values whose z-score magnitude exceeds threshold.",
        "    a = np.asarray(values, dtype=float)\n    return np.abs((a - a.mean()) / a.std()) > threshold\n",
        "    a = np.asarray(values, dtype=float)\n    return (a - a.mean()) / a.std() > threshold\n",
        "    def test_outlier(self):\n"
        "        np.testing.assert_array_equal(task_func([1, 1, 1, 1, 10], 1.5), [False] * 4 + [True])\n"
        "    def test_low_outlier(self):\n"
        "        np.testing.assert_array_equal(task_func([10, 10, 10, 10, -30], 1.5), [False] * 4 + [True])\n",
    ),
    S(
        ("numpy",),
        "import numpy as np",
        "task_func(n)",
        "Return the n x n identity matrix with its anti-diagonal also set to 1, as integers.",
        "    m = np.eye(n, dtype=int)\n    m[np.arange(n), n - 1 - np.arange(n)] = 1\n    return m\n",
        "    return np.eye(n, dtype=int) + np.fliplr(np.eye(n, dtype=int))\n",
        "    def test_three(self):\n        np.testing.assert_array_equal(task_func(3), [[1, 0, 1], [0, 1, 0], [1, 0, 1]])\n"
        "    def test_two(self):\n        np.testing.assert_array_equal(task_func(2), [[1, 1], [1, 1]])\n",
    ),
    # ------------------------------------------------------------------ pandas
    S(
        ("pandas",),
        "import pandas as pd",
        "task_func(records)",
        "Build a DataFrame from records (dicts with 'name' and 'score') and return the mean score per name, sorted by name.",
        "    return pd.DataFrame(records).groupby('name')['score'].mean().sort_index()\n",
        "    return pd.DataFrame(records).groupby('name')['score'].sum().sort_index()\n",
        "    def test_mean(self):\n"
        "        r = task_func([{'name': 'a', 'score': 1}, {'name': 'a', 'score': 3}, {'name': 'b', 'score': 2}])\n"
        "        self.assertEqual(r.to_dict(), {'a': 2.0, 'b': 2.0})\n"
        "    def test_index(self):\n        self.assertEqual(list(task_func([{'name': 'z', 'score': 1}, {'name': 'c', 'score': 1}]).index), ['c', 'z'])\n",
    ),
    S(
        ("pandas",),
        "import pandas as pd",
        "task_func(df, column)",
        "Return a copy of df without rows whose column is missing, with the index reset.",
        "    return df.dropna(subset=[column]).reset_index(drop=True)\n",
        "    return df.dropna().reset_index(drop=True)\n",
        "    def test_drop(self):\n        df = pd.DataFrame({'a': [1, None, 3], 'b': [None, 2, 3]})\n"
        "        r = task_func(df, 'a')\n        self.assertEqual(r['a'].tolist(), [1.0, 3.0])\n        self.assertEqual(len(df), 3)\n"
        "    def test_index(self):\n        df = pd.DataFrame({'a': [None, 5]})\n        self.assertEqual(list(task_func(df, 'a').index), [0])\n",
    ),
    S(
        ("pandas",),
        "import pandas as pd",
        "task_func(df)",
        "Return the name of the numeric column with the largest variance.",
        "    return df.select_dtypes('number').var().idxmax()\n",
        "    return df.select_dtypes('number').var().idxmin()\n",
        "    def test_var(self):\n        df = pd.DataFrame({'x': [1, 1, 1], 'y': [1, 5, 9], 's': ['a', 'b', 'c']})\n"
        "        self.assertEqual(task_func(df), 'y')\n"
        "    def test_two(self):\n        self.assertEqual(task_func(pd.DataFrame({'p': [0, 10], 'q': [0, 1]})), 'p')\n",
    ),
    S(
        ("pandas",),
        "import pandas as pd",
        "task_func(df)",
        "Add a column 'total' = price * qty and return the DataFrame sorted by total descending.",
        "    out = df.assign(total=df['price'] * df['qty'])\n    return out.sort_values('total', ascending=False)\n",
        "    out = df.assign(total=df['price'] + df['qty'])\n    return out.sort_values('total', ascending=False)\n",
        "    def test_total(self):\n        df = pd.DataFrame({'price': [2, 10], 'qty': [5, 2]})\n"
        "        r = task_func(df)\n        self.assertEqual(r['total'].tolist(), [20, 10])\n"
        "    def test_order(self):\n        df = pd.DataFrame({'price': [1, 3], 'qty': [1, 1]})\n"
        "        self.assertEqual(task_func(df)['price'].tolist(), [3, 1])\n",
    ),
    S(
        ("pandas",),
        "import pandas as pd",
        "task_func(csv_text)",
        "Read CSV text and return the number of distinct values in each column as a dict.",
        "    import io\n    return pd.read_csv(io.StringIO(csv_text)).nunique().to_dict()\n",
        "    import io\n    return pd.read_csv(io.StringIO(csv_text)).count().to_dict()\n",
        "    def test_counts(self):\n        self.assertEqual(task_func('a,b\\n1,x\\n1,y\\n2,y\\n'), {'a': 2, 'b': 2})\n"
        "    def test_one(self):\n        self.assertEqual(task_func('c\\n5\\n'), {'c': 1})\n",
    ),
    S(
        ("pandas",),
        "import pandas as pd",
        "task_func(dates, values)",
        "Return the monthly sums of values indexed by dates (strings), as a dict month 'YYYY-MM' -> sum.",
        "    s = pd.Series(values, index=pd.to_datetime(dates))\n"
        "    return {k.strftime('%Y-%m'): v for k, v in s.groupby(s.index.to_period('M')).sum().items()}\n",
        "    s = pd.Series(values, index=pd.to_datetime(dates))\n"
        "    return {k.strftime('%Y-%m'): v for k, v in s.groupby(s.index.to_period('M')).max().items()}\n",
        "    def test_months(self):\n"
        "        r = task_func(['2024-01-05', '2024-01-20', '2024-02-01'], [1, 2, 4])\n"
        "        self.assertEqual(r, {'2024-01': 3, '2024-02': 4})\n",
    ),
    S(
        ("pandas", "numpy"),
        "import numpy as np\nimport pandas as pd",
        "task_func(rows, cols, seed=0)",
        "Return a DataFrame of random integers in [0, 100) with columns named c0..c{cols-1}, seeded.",
        "    rng = np.random.default_rng(seed)\n"
        "    return pd.DataFrame(rng.integers(0, 100, size=(rows, cols)), columns=[f'c{i}' for i in range(cols)])\n",
        "    rng = np.random.default_rng(seed)\n    return pd.DataFrame(rng.integers(0, 100, size=(rows, cols)))\n",
        "    def test_shape(self):\n        self.assertEqual(task_func(4, 3).shape, (4, 3))\n"
        "    def test_columns(self):\n        self.assertEqual(list(task_func(1, 2).columns), ['c0', 'c1'])\n"
        "    def test_range(self):\n        df = task_func(50, 2)\n        self.assertTrue(((df >= 0) & (df < 100)).all().all())\n",
    ),
    S(
        ("pandas",),
        "import pandas as pd",
        "task_func(left, right)",
        "Inner-join two DataFrames on 'id' and return the number of rows.",
        "    return len(left.merge(right, on='id', how='inner'))\n",
        "    return len(left.merge(right, on='id', how='outer'))\n",
        "    def test_join(self):\n        l = pd.DataFrame({'id': [1, 2, 3]})\n        r = pd.DataFrame({'id': [2, 3, 4]})\n"
        "        self.assertEqual(task_func(l, r), 2)\n"
        "    def test_dupes(self):\n        l = pd.DataFrame({'id': [1, 1]})\n        r = pd.DataFrame({'id': [1]})\n"
        "        self.assertEqual(task_func(l, r), 2)\n",
    ),
    # ------------------------------------------------------------------ matplotlib (Agg)
    S(
        ("matplotlib",),
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt",
        "task_func(values)",
        "Plot values as a line and return the Axes with the title 'Values'.",
        "    fig, ax = plt.subplots()\n    ax.plot(values)\n    ax.set_title('Values')\n    return ax\n",
        "    fig, ax = plt.subplots()\n    ax.plot(values)\n    ax.set_title('values')\n    return ax\n",
        "    def test_title(self):\n        self.assertEqual(task_func([1, 2]).get_title(), 'Values')\n"
        "    def test_data(self):\n        ax = task_func([3, 1, 2])\n        self.assertEqual(list(ax.lines[0].get_ydata()), [3, 1, 2])\n"
        "    def tearDown(self):\n        plt.close('all')\n",
    ),
    S(
        ("matplotlib", "collections"),
        "from collections import Counter\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt",
        "task_func(letters)",
        "Draw a bar chart of letter counts (bars in sorted letter order) and return the Axes.",
        "    counts = Counter(letters)\n    keys = sorted(counts)\n    fig, ax = plt.subplots()\n"
        "    ax.bar(keys, [counts[k] for k in keys])\n    return ax\n",
        "    counts = Counter(letters)\n    keys = list(counts)\n    fig, ax = plt.subplots()\n"
        "    ax.bar(keys, [counts[k] for k in keys])\n    return ax\n",
        "    def test_heights(self):\n        ax = task_func('bab')\n"
        "        self.assertEqual([p.get_height() for p in ax.patches], [1, 2])\n"
        "    def test_count(self):\n        self.assertEqual(len(task_func('xyz').patches), 3)\n"
        "    def tearDown(self):\n        plt.close('all')\n",
    ),
    S(
        ("matplotlib", "numpy"),
        "import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt",
        "task_func(data, bins=5)",
        "Draw a histogram of data with the given number of bins; return (Axes, counts as a list of ints).",
        "    fig, ax = plt.subplots()\n    counts, _, _ = ax.hist(data, bins=bins)\n    return ax, [int(c) for c in counts]\n",
        "    fig, ax = plt.subplots()\n    counts, _, _ = ax.hist(data, bins=bins + 1)\n    return ax, [int(c) for c in counts]\n",
        "    def test_counts(self):\n        ax, counts = task_func([1, 1, 2, 3, 5], bins=2)\n        self.assertEqual(counts, [3, 2])\n"
        "    def test_bins(self):\n        self.assertEqual(len(task_func(list(range(10)))[1]), 5)\n"
        "    def tearDown(self):\n        plt.close('all')\n",
    ),
    S(
        ("matplotlib",),
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt",
        "task_func(xs, ys)",
        "Scatter ys against xs with axis labels 'x' and 'y'; return the Axes.",
        "    fig, ax = plt.subplots()\n    ax.scatter(xs, ys)\n    ax.set_xlabel('x')\n    ax.set_ylabel('y')\n    return ax\n",
        "    fig, ax = plt.subplots()\n    ax.scatter(ys, xs)\n    ax.set_xlabel('y')\n    ax.set_ylabel('x')\n    return ax\n",
        "    def test_labels(self):\n        ax = task_func([1], [2])\n"
        "        self.assertEqual((ax.get_xlabel(), ax.get_ylabel()), ('x', 'y'))\n"
        "    def test_points(self):\n        ax = task_func([1, 2], [3, 4])\n"
        "        self.assertEqual(ax.collections[0].get_offsets().tolist(), [[1, 3], [2, 4]])\n"
        "    def tearDown(self):\n        plt.close('all')\n",
    ),
    # ------------------------------------------------------------------ regex
    S(
        ("re",),
        "import re",
        "task_func(text)",
        "Return all e-mail addresses in text, in order.",
        "    return re.findall(r'[\\w.+-]+@[\\w-]+\\.[\\w.]+', text)\n",
        "    return re.findall(r'\\w+@\\w+', text)\n",
        "    def test_two(self):\n        self.assertEqual(task_func('a.b@x.org and c@y.io'), ['a.b@x.org', 'c@y.io'])\n"
        "    def test_none(self):\n        self.assertEqual(task_func('no mail'), [])\n",
    ),
    S(
        ("re",),
        "import re",
        "task_func(text)",
        "Collapse runs of whitespace to one space and strip the ends.",
        "    return re.sub(r'\\s+', ' ', text).strip()\n",
        "    return re.sub(r' +', ' ', text).strip()\n",
        "    def test_spaces(self):\n        self.assertEqual(task_func('  a   b '), 'a b')\n"
        "    def test_tabs(self):\n        self.assertEqual(task_func('a\\t\\nb'), 'a b')\n",
    ),
    S(
        ("re",),
        "import re",
        "task_func(text)",
        "Return the sum of all integers (with optional minus sign) in text.",
        "    return sum(int(n) for n in re.findall(r'-?\\d+', text))\n",
        "    return sum(int(n) for n in re.findall(r'\\d+', text))\n",
        "    def test_sum(self):\n        self.assertEqual(task_func('a1b22c-3'), 20)\n"
        "    def test_empty(self):\n        self.assertEqual(task_func('none'), 0)\n",
    ),
    S(
        ("re",),
        "import re",
        "task_func(date_text)",
        "Convert dates written DD/MM/YYYY in the text to YYYY-MM-DD.",
        "    return re.sub(r'\\b(\\d{2})/(\\d{2})/(\\d{4})\\b', r'\\3-\\2-\\1', date_text)\n",
        "    return re.sub(r'\\b(\\d{2})/(\\d{2})/(\\d{4})\\b', r'\\3-\\1-\\2', date_text)\n",
        "    def test_one(self):\n        self.assertEqual(task_func('on 05/11/2023.'), 'on 2023-11-05.')\n"
        "    def test_keep(self):\n        self.assertEqual(task_func('1/2/3'), '1/2/3')\n",
    ),
    S(
        ("re",),
        "import re",
        "task_func(password)",
        "Return True if password has >= 8 characters, a digit, an upper and a lower case letter.",
        "    return bool(len(password) >= 8 and re.search(r'\\d', password) and re.search(r'[A-Z]', password)\n"
        "                and re.search(r'[a-z]', password))\n",
        "    return len(password) >= 8\n",
        "    def test_good(self):\n        self.assertTrue(task_func('Abcdefg1'))\n"
        "    def test_no_digit(self):\n        self.assertFalse(task_func('Abcdefgh'))\n"
        "    def test_short(self):\n        self.assertFalse(task_func('Ab1'))\n",
    ),
    S(
        ("re", "collections"),
        "import re\nfrom collections import Counter",
        "task_func(text)",
        "Return the hashtags (#word) of text with their counts as a dict, case-insensitive (lower-cased).",
        "    return dict(Counter(t.lower() for t in re.findall(r'#(\\w+)', text)))\n",
        "    return dict(Counter(re.findall(r'#(\\w+)', text)))\n",
        "    def test_tags(self):\n        self.assertEqual(task_func('#A b #a #c'), {'a': 2, 'c': 1})\n"
        "    def test_none(self):\n        self.assertEqual(task_func('x'), {})\n",
    ),
    # ------------------------------------------------------------------ datetime
    S(
        ("datetime",),
        "from datetime import date",
        "task_func(start, end)",
        "Return the number of weekdays (Mon-Fri) between two ISO dates, both included.",
        "    from datetime import timedelta\n    d0, d1 = date.fromisoformat(start), date.fromisoformat(end)\n"
        "    return sum(1 for i in range((d1 - d0).days + 1) if (d0 + timedelta(days=i)).weekday() < 5)\n",
        "    d0, d1 = date.fromisoformat(start), date.fromisoformat(end)\n    return (d1 - d0).days + 1\n",
        "    def test_week(self):\n        self.assertEqual(task_func('2024-01-01', '2024-01-07'), 5)\n"
        "    def test_weekend(self):\n        self.assertEqual(task_func('2024-01-06', '2024-01-07'), 0)\n",
    ),
    S(
        ("datetime",),
        "from datetime import datetime",
        "task_func(timestamp)",
        "Return the UTC ISO-8601 text (seconds precision, '+00:00') of a Unix timestamp.",
        "    from datetime import timezone\n    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec='seconds')\n",
        "    return datetime.utcfromtimestamp(timestamp).isoformat(timespec='seconds')\n",
        "    def test_epoch(self):\n        self.assertEqual(task_func(0), '1970-01-01T00:00:00+00:00')\n"
        "    def test_day(self):\n        self.assertEqual(task_func(86400 * 365), '1971-01-01T00:00:00+00:00')\n",
    ),
    S(
        ("datetime",),
        "from datetime import date",
        "task_func(birth, today)",
        "Return the age in whole years on ISO date today of someone born on ISO date birth.",
        "    b, t = date.fromisoformat(birth), date.fromisoformat(today)\n"
        "    return t.year - b.year - ((t.month, t.day) < (b.month, b.day))\n",
        "    b, t = date.fromisoformat(birth), date.fromisoformat(today)\n    return t.year - b.year\n",
        "    def test_before(self):\n        self.assertEqual(task_func('2000-06-15', '2024-06-14'), 23)\n"
        "    def test_on(self):\n        self.assertEqual(task_func('2000-06-15', '2024-06-15'), 24)\n",
    ),
    S(
        ("datetime",),
        "from datetime import datetime, timedelta",
        "task_func(start, minutes, count)",
        "Return count 'HH:MM' times starting at 'HH:MM' start, every minutes minutes (wrapping at midnight).",
        "    t = datetime.strptime(start, '%H:%M')\n"
        "    return [(t + timedelta(minutes=minutes * i)).strftime('%H:%M') for i in range(count)]\n",
        "    t = datetime.strptime(start, '%H:%M')\n"
        "    return [(t + timedelta(minutes=minutes * i)).strftime('%H:%M') for i in range(1, count + 1)]\n",
        "    def test_steps(self):\n        self.assertEqual(task_func('23:30', 20, 3), ['23:30', '23:50', '00:10'])\n"
        "    def test_one(self):\n        self.assertEqual(task_func('01:00', 5, 1), ['01:00'])\n",
    ),
    # ------------------------------------------------------------------ file I/O in a temp dir
    S(
        ("os", "json"),
        "import json\nimport os",
        "task_func(directory, data)",
        "Write data as JSON to directory/data.json and return the file's path.",
        "    path = os.path.join(directory, 'data.json')\n    with open(path, 'w') as f:\n        json.dump(data, f)\n    return path\n",
        "    path = os.path.join(directory, 'data.json')\n    with open(path, 'w') as f:\n        f.write(str(data))\n    return path\n",
        "    def setUp(self):\n        self.dir = tempfile.mkdtemp()\n"
        "    def tearDown(self):\n        shutil.rmtree(self.dir)\n"
        "    def test_roundtrip(self):\n        p = task_func(self.dir, {'a': [1, 2]})\n"
        "        with open(p) as f:\n            self.assertEqual(json.load(f), {'a': [1, 2]})\n"
        "    def test_name(self):\n        self.assertTrue(task_func(self.dir, 1).endswith('data.json'))\n",
        "import json\nimport shutil\nimport tempfile",
    ),
    S(
        ("os", "csv"),
        "import csv\nimport os",
        "task_func(path)",
        "Return the sum of the 'amount' column of the CSV file at path (0 for a header-only file).",
        "    with open(path, newline='') as f:\n        return sum(float(r['amount']) for r in csv.DictReader(f))\n",
        "    with open(path, newline='') as f:\n        return sum(float(r['amount']) for r in list(csv.DictReader(f))[1:])\n",
        "    def setUp(self):\n        self.dir = tempfile.mkdtemp()\n"
        "    def tearDown(self):\n        shutil.rmtree(self.dir)\n"
        "    def write(self, text):\n        p = os.path.join(self.dir, 'a.csv')\n"
        "        with open(p, 'w') as f:\n            f.write(text)\n        return p\n"
        "    def test_sum(self):\n        self.assertEqual(task_func(self.write('amount,x\\n1.5,a\\n2,b\\n')), 3.5)\n"
        "    def test_header(self):\n        self.assertEqual(task_func(self.write('amount\\n')), 0)\n",
        "import os\nimport shutil\nimport tempfile",
    ),
    S(
        ("os",),
        "import os",
        "task_func(directory, ext)",
        "Return the sorted names of files in directory (not recursive) ending with ext.",
        "    return sorted(n for n in os.listdir(directory)\n"
        "                  if n.endswith(ext) and os.path.isfile(os.path.join(directory, n)))\n",
        "    return sorted(n for n in os.listdir(directory) if n.endswith(ext))\n",
        "    def setUp(self):\n        self.dir = tempfile.mkdtemp()\n"
        "        for n in ('b.txt', 'a.txt', 'c.md'):\n            open(os.path.join(self.dir, n), 'w').close()\n"
        "        os.mkdir(os.path.join(self.dir, 'd.txt'))\n"
        "    def tearDown(self):\n        shutil.rmtree(self.dir)\n"
        "    def test_txt(self):\n        self.assertEqual(task_func(self.dir, '.txt'), ['a.txt', 'b.txt'])\n"
        "    def test_md(self):\n        self.assertEqual(task_func(self.dir, '.md'), ['c.md'])\n",
        "import os\nimport shutil\nimport tempfile",
    ),
    S(
        ("os", "shutil"),
        "import os\nimport shutil",
        "task_func(src_dir, dst_dir)",
        "Copy every '.log' file of src_dir into dst_dir (created if missing); return how many were copied.",
        "    os.makedirs(dst_dir, exist_ok=True)\n    n = 0\n    for name in os.listdir(src_dir):\n"
        "        if name.endswith('.log'):\n            shutil.copy(os.path.join(src_dir, name), dst_dir)\n            n += 1\n"
        "    return n\n",
        "    os.makedirs(dst_dir, exist_ok=True)\n    return len(os.listdir(src_dir))\n",
        "    def setUp(self):\n        self.dir = tempfile.mkdtemp()\n        self.src = os.path.join(self.dir, 's')\n"
        "        os.mkdir(self.src)\n        for n in ('1.log', '2.log', 'x.txt'):\n"
        "            with open(os.path.join(self.src, n), 'w') as f:\n                f.write(n)\n"
        "    def tearDown(self):\n        shutil.rmtree(self.dir)\n"
        "    def test_copy(self):\n        dst = os.path.join(self.dir, 'd')\n        self.assertEqual(task_func(self.src, dst), 2)\n"
        "        self.assertEqual(sorted(os.listdir(dst)), ['1.log', '2.log'])\n",
        "import os\nimport shutil\nimport tempfile",
    ),
    S(
        ("os", "pathlib"),
        "from pathlib import Path",
        "task_func(path, lines)",
        "Append lines to the text file at path (one per line) and return the file's line count.",
        "    with open(path, 'a') as f:\n        for line in lines:\n            f.write(line + '\\n')\n"
        "    return len(Path(path).read_text().splitlines())\n",
        "    with open(path, 'w') as f:\n        for line in lines:\n            f.write(line + '\\n')\n"
        "    return len(Path(path).read_text().splitlines())\n",
        "    def setUp(self):\n        self.dir = tempfile.mkdtemp()\n        self.path = os.path.join(self.dir, 'f.txt')\n"
        "        with open(self.path, 'w') as f:\n            f.write('first\\n')\n"
        "    def tearDown(self):\n        shutil.rmtree(self.dir)\n"
        "    def test_append(self):\n        self.assertEqual(task_func(self.path, ['a', 'b']), 3)\n"
        "    def test_none(self):\n        self.assertEqual(task_func(self.path, []), 1)\n",
        "import os\nimport shutil\nimport tempfile",
    ),
]
