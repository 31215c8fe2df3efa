"""Use cases: one module per lifecycle step, composing pure logic and adapters into typed results."""
