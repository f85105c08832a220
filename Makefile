# The two README commands. Each creates or reuses .venv and installs what it needs.
.PHONY: demo test bootstrap clean

demo:
	@scripts/bootstrap.sh >/dev/null
	@scripts/run-clean-env.sh .venv/bin/python -m mobicharge_robot.tools.demo $(ARGS)

test:
	@scripts/bootstrap.sh --debian >/dev/null
	@scripts/run-clean-env.sh .venv/bin/python -m pytest test $(ARGS)

bootstrap:
	@scripts/bootstrap.sh --debian

clean:
	rm -rf .venv runs .pytest_cache
