"""koderz's own LiveCodeBench-format problems: stdin programs (AtCoder/Codeforces style) and
LeetCode-style functional ones, each with a right and a wrong answer and its test inputs.

Expected outputs are not written here: ``make_bench_formats.py`` runs the right answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stdin:
    title: str
    statement: str
    right: str
    wrong: str
    inputs: tuple[str, ...]  # the first two are public


@dataclass(frozen=True)
class Functional:
    title: str
    statement: str
    func: str
    params: str  # "self, nums: List[int], k: int"
    returns: str
    right: str  # method body, indented 8
    wrong: str
    inputs: tuple[tuple[Any, ...], ...]


STDIN: list[Stdin] = [
    Stdin(
        "Sum of Two",
        "Read A and B; print A+B.",
        "a, b = map(int, input().split())\nprint(a + b)\n",
        "a, b = map(int, input().split())\nprint(a - b)\n",
        ("1 2\n", "10 20\n", "-5 5\n", "1000000000 1000000000\n"),
    ),
    Stdin(
        "Max of List",
        "Read N then N integers; print the largest.",
        "n = int(input())\nprint(max(map(int, input().split())))\n",
        "n = int(input())\nprint(list(map(int, input().split()))[-1])\n",
        ("3\n1 5 2\n", "1\n7\n", "4\n-1 -2 -3 -4\n"),
    ),
    Stdin(
        "Reverse Words",
        "Read a line; print its words in reverse order.",
        "print(' '.join(input().split()[::-1]))\n",
        "print(input()[::-1])\n",
        ("hello world\n", "a b c\n", "one\n"),
    ),
    Stdin(
        "Count Vowels",
        "Read a string S; print the number of vowels (aeiou).",
        "s = input()\nprint(sum(c in 'aeiou' for c in s))\n",
        "s = input()\nprint(sum(c in 'aeio' for c in s))\n",
        ("banana\n", "xyz\n", "queueing\n"),
    ),
    Stdin(
        "Grid Paths",
        "Read H W; print the number of monotone lattice paths modulo 998244353.",
        "import math\nh, w = map(int, input().split())\nprint(math.comb(h + w, h) % 998244353)\n",
        "import math\nh, w = map(int, input().split())\nprint(math.comb(h + w, h))\n",
        ("2 2\n", "1 1\n", "100 100\n", "3 7\n"),
    ),
    Stdin(
        "Average",
        "Read N and N integers; print their average with 6 decimals.",
        "n = int(input())\na = list(map(int, input().split()))\nprint(f'{sum(a) / n:.6f}')\n",
        "n = int(input())\na = list(map(int, input().split()))\nprint(sum(a) // n)\n",
        ("2\n1 2\n", "3\n1 1 1\n", "4\n1 2 3 5\n"),
    ),
    Stdin(
        "Prefix Sums",
        "Read N and N integers; print the N prefix sums on one line.",
        "import itertools\nn = int(input())\nprint(*itertools.accumulate(map(int, input().split())))\n",
        "n = int(input())\nprint(*map(int, input().split()))\n",
        ("3\n1 2 3\n", "1\n5\n", "5\n1 -1 1 -1 1\n"),
    ),
    Stdin(
        "Multiple Lines",
        "Read N; print 1..N each on its own line.",
        "n = int(input())\nfor i in range(1, n + 1):\n    print(i)\n",
        "n = int(input())\nfor i in range(n):\n    print(i)\n",
        ("3\n", "1\n", "6\n"),
    ),
    Stdin(
        "Palindrome",
        "Read S; print Yes if S is a palindrome, else No.",
        "s = input().strip()\nprint('Yes' if s == s[::-1] else 'No')\n",
        "s = input().strip()\nprint('Yes' if s[0] == s[-1] else 'No')\n",
        ("abba\n", "abca\n", "x\n", "abcda\n"),
    ),
    Stdin(
        "Sort Numbers",
        "Read N and N integers; print them sorted ascending.",
        "input()\nprint(*sorted(map(int, input().split())))\n",
        "input()\nprint(*sorted(map(int, input().split()), reverse=True))\n",
        ("3\n3 1 2\n", "2\n5 5\n", "4\n9 -3 0 4\n"),
    ),
    Stdin(
        "GCD",
        "Read A and B; print gcd(A, B).",
        "import math\na, b = map(int, input().split())\nprint(math.gcd(a, b))\n",
        "a, b = map(int, input().split())\nprint(min(a, b))\n",
        ("12 18\n", "7 13\n", "100 10\n"),
    ),
    Stdin(
        "Distinct",
        "Read N and N integers; print the number of distinct values.",
        "input()\nprint(len(set(input().split())))\n",
        "print(input())\n",
        ("4\n1 2 2 3\n", "1\n9\n", "3\n5 5 5\n"),
    ),
    Stdin(
        "Read All",
        "Read T then T lines each with two integers; print each sum.",
        "import sys\ndata = sys.stdin.read().split()\nt = int(data[0])\n"
        "for i in range(t):\n    print(int(data[1 + 2 * i]) + int(data[2 + 2 * i]))\n",
        "import sys\ndata = sys.stdin.read().split()\nprint(sum(map(int, data[1:])))\n",
        ("2\n1 2\n3 4\n", "1\n0 0\n", "3\n1 1\n2 2\n3 3\n"),
    ),
    Stdin(
        "Float Division",
        "Read A and B; print A/B.",
        "a, b = map(int, input().split())\nprint(a / b)\n",
        "a, b = map(int, input().split())\nprint(a // b)\n",
        ("1 4\n", "3 2\n", "10 5\n"),
    ),
    Stdin(
        "Fizz",
        "Read N; print Fizz if N is divisible by 3, otherwise N.",
        "n = int(input())\nprint('Fizz' if n % 3 == 0 else n)\n",
        "n = int(input())\nprint('Fizz' if n % 5 == 0 else n)\n",
        ("9\n", "10\n", "3\n"),
    ),
    Stdin(
        "Main Guard",
        "Read N; print N squared (the program uses a main guard).",
        "def main():\n    n = int(input())\n    print(n * n)\n\nif __name__ == '__main__':\n    main()\n",
        "def main():\n    n = int(input())\n    print(n + n)\n\nif __name__ == '__main__':\n    main()\n",
        ("3\n", "0\n", "12\n"),
    ),
]

FUNCTIONAL: list[Functional] = [
    Functional(
        "Two Sum",
        "Return indices of the two numbers adding up to target.",
        "twoSum",
        "self, nums: List[int], target: int",
        "List[int]",
        "        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n"
        "                return [seen[target - x], i]\n            seen[x] = i\n        return []\n",
        "        return [0, 1]\n",
        (([2, 7, 11, 15], 9), ([3, 2, 4], 6), ([3, 3], 6)),
    ),
    Functional(
        "Maximum Subarray",
        "Return the largest subarray sum.",
        "maxSubArray",
        "self, nums: List[int]",
        "int",
        "        best = cur = nums[0]\n        for x in nums[1:]:\n            cur = max(x, cur + x)\n"
        "            best = max(best, cur)\n        return best\n",
        "        return max(nums)\n",
        (([-2, 1, -3, 4, -1, 2, 1, -5, 4],), ([1],), ([5, 4, -1, 7, 8],)),
    ),
    Functional(
        "Valid Parentheses",
        "Return whether the brackets are balanced.",
        "isValid",
        "self, s: str",
        "bool",
        "        stack = []\n        pairs = {')': '(', ']': '[', '}': '{'}\n        for c in s:\n"
        "            if c in pairs:\n                if not stack or stack.pop() != pairs[c]:\n"
        "                    return False\n            else:\n                stack.append(c)\n        return not stack\n",
        "        return s.count('(') == s.count(')')\n",
        (("()[]{}",), ("(]",), ("([)]",), ("{[]}",)),
    ),
    Functional(
        "Climbing Stairs",
        "Ways to climb n stairs with steps of 1 or 2.",
        "climbStairs",
        "self, n: int",
        "int",
        "        a, b = 1, 1\n        for _ in range(n):\n            a, b = b, a + b\n        return a\n",
        "        return n\n",
        ((2,), (3,), (10,), (45,)),
    ),
    Functional(
        "Contains Duplicate",
        "Return whether any value appears twice.",
        "containsDuplicate",
        "self, nums: List[int]",
        "bool",
        "        return len(set(nums)) != len(nums)\n",
        "        return False\n",
        (([1, 2, 3, 1],), ([1, 2, 3, 4],), ([1, 1, 1, 3, 3, 4, 3, 2, 4, 2],)),
    ),
    Functional(
        "Single Number",
        "Every element appears twice except one; return it.",
        "singleNumber",
        "self, nums: List[int]",
        "int",
        "        r = 0\n        for x in nums:\n            r ^= x\n        return r\n",
        "        return nums[0]\n",
        (([2, 2, 1],), ([4, 1, 2, 1, 2],), ([1],)),
    ),
    Functional(
        "Move Zeroes",
        "Return nums with zeroes moved to the end, order kept.",
        "moveZeroes",
        "self, nums: List[int]",
        "List[int]",
        "        return [x for x in nums if x] + [0] * nums.count(0)\n",
        "        return sorted(nums, reverse=True)\n",
        (([0, 1, 0, 3, 12],), ([0],), ([1, 0, 2],)),
    ),
    Functional(
        "Pair Tuple",
        "Return (min, max) of nums (a tuple counts as a list).",
        "minMax",
        "self, nums: List[int]",
        "List[int]",
        "        return (min(nums), max(nums))\n",
        "        return (max(nums), min(nums))\n",
        (([3, 1, 2],), ([5],), ([-1, 8, 0],)),
    ),
    Functional(
        "Longest Common Prefix",
        "Return the longest common prefix.",
        "longestCommonPrefix",
        "self, strs: List[str]",
        "str",
        "        import os\n        return os.path.commonprefix(strs)\n",
        "        return strs[0][:1]\n",
        ((["flower", "flow", "flight"],), (["dog", "racecar", "car"],), (["abc", "abcd"],)),
    ),
    Functional(
        "Count Primes",
        "Count primes strictly less than n.",
        "countPrimes",
        "self, n: int",
        "int",
        "        if n < 3:\n            return 0\n        sieve = bytearray([1]) * n\n        sieve[0] = sieve[1] = 0\n"
        "        for i in range(2, int(n ** 0.5) + 1):\n            if sieve[i]:\n"
        "                sieve[i * i::i] = bytearray(len(range(i * i, n, i)))\n        return sum(sieve)\n",
        "        return sum(1 for k in range(2, n + 1) if all(k % d for d in range(2, k)))\n",
        ((10,), (0,), (2,), (100,)),
    ),
    Functional(
        "Merge Intervals",
        "Merge overlapping intervals.",
        "merge",
        "self, intervals: List[List[int]]",
        "List[List[int]]",
        "        out = []\n        for a, b in sorted(intervals):\n            if out and a <= out[-1][1]:\n"
        "                out[-1][1] = max(out[-1][1], b)\n            else:\n                out.append([a, b])\n"
        "        return out\n",
        "        return sorted(intervals)\n",
        (([[1, 3], [2, 6], [8, 10], [15, 18]],), ([[1, 4], [4, 5]],)),
    ),
    Functional(
        "Roman to Integer",
        "Convert a Roman numeral to an integer.",
        "romanToInt",
        "self, s: str",
        "int",
        "        v = {'I': 1, 'V': 5, 'X': 10, 'L': 50, 'C': 100, 'D': 500, 'M': 1000}\n        total = 0\n"
        "        for i, c in enumerate(s):\n            if i + 1 < len(s) and v[c] < v[s[i + 1]]:\n"
        "                total -= v[c]\n            else:\n                total += v[c]\n        return total\n",
        "        v = {'I': 1, 'V': 5, 'X': 10, 'L': 50, 'C': 100, 'D': 500, 'M': 1000}\n"
        "        return sum(v[c] for c in s)\n",
        (("III",), ("LVIII",), ("MCMXCIV",)),
    ),
    Functional(
        "Group Sizes",
        "Return the sizes of groups of equal adjacent characters.",
        "groupSizes",
        "self, s: str",
        "List[int]",
        "        import itertools\n        return [len(list(g)) for _, g in itertools.groupby(s)]\n",
        "        return [s.count(c) for c in sorted(set(s))][::-1]\n",
        (("aabccc",), ("abc",), ("zzzz",)),
    ),
    Functional(
        "Power of Two",
        "Return whether n is a power of two.",
        "isPowerOfTwo",
        "self, n: int",
        "bool",
        "        return n > 0 and n & (n - 1) == 0\n",
        "        return n % 2 == 0\n",
        ((1,), (16,), (3,), (0,)),
    ),
    Functional(
        "Matrix Transpose",
        "Return the transpose of the matrix.",
        "transpose",
        "self, matrix: List[List[int]]",
        "List[List[int]]",
        "        return [list(r) for r in zip(*matrix)]\n",
        "        return matrix\n",
        (([[1, 2, 3], [4, 5, 6]],), ([[1]],)),
    ),
    Functional(
        "Add Strings",
        "Return the sum of two non-negative integers given as strings.",
        "addStrings",
        "self, num1: str, num2: str",
        "str",
        "        return str(int(num1) + int(num2))\n",
        "        return num1 + num2\n",
        (("11", "123"), ("0", "0"), ("456", "77")),
    ),
]
