"""Simulated WeCom and DingTalk platforms for `leadbot demo` and the tests."""
