"""Studies (issue 25): many members trained, mapped and measured, then correlated and reported."""
