"""Assertion rewriting for the shared contract module (it is imported, not collected)."""

import pytest

pytest.register_assert_rewrite("store_contract")
