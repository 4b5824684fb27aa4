"""Sidebar panels and lists."""
