"""`@belfry.watch` and the exit flush, each in a process of its own."""


def test_a_failing_call_alerts_with_its_traceback_and_the_process_exits_right_after(receiver, run_script):
    p = run_script(
        f"""
        import belfry

        belfry.init(urls=[{receiver.url!r}])

        class BadInput(Exception):
            pass

        @belfry.watch(errors=(BadInput,), name="import-orders")
        def load(n):
            raise BadInput(f"row {{n}} has no id")

        try:
            load(7)
        except BadInput as e:
            print("re-raised:", e)
        """
    )
    assert "re-raised: row 7 has no id" in p.stdout
    [alert] = receiver.wait_for(lambda b: len(b) >= 1)
    assert alert["job"] == "import-orders"
    assert alert["state"] == "failed"
    assert "BadInput: row 7 has no id" in alert["error"]
    assert "Traceback" in alert["error"] and "in load" in alert["error"]


def test_ten_processes_that_exit_right_after_a_failure_all_alert(receiver, run_script):
    for i in range(10):
        run_script(
            f"""
            import belfry, sys
            belfry.init(urls=[{receiver.url!r}])

            @belfry.watch(name="job-{i}")
            def work():
                1 / 0

            try:
                work()
            except ZeroDivisionError:
                sys.exit(0)
            """
        )
    bodies = receiver.wait_for(lambda b: len(b) >= 10)
    assert sorted(b["job"] for b in bodies) == sorted(f"job-{i}" for i in range(10))
    assert all("ZeroDivisionError" in b["error"] for b in bodies)


def test_only_the_listed_errors_fail_and_the_job_is_named_from_module_and_qualname(receiver, run_script, tmp_path):
    (tmp_path / "jobs.py").write_text(
        "import belfry\n"
        "class Report:\n"
        "    @belfry.watch(errors=(OSError,))\n"
        "    def build(self, kind):\n"
        "        if kind == 'user':\n"
        "            raise ValueError('bad input')\n"
        "        if kind == 'disk':\n"
        "            raise OSError('disk full')\n"
        "        return kind\n"
    )
    run_script(
        f"""
        import sys
        sys.path.insert(0, ".")
        import belfry, jobs
        belfry.init(urls=[{receiver.url!r}])
        r = jobs.Report()
        assert r.build("ok") == "ok"
        try:
            r.build("user")
        except ValueError:
            pass
        else:
            raise SystemExit("not re-raised")
        ok, report = belfry.flush(10)
        assert ok, report
        try:
            r.build("disk")
        except OSError:
            pass
        """
    )
    bodies = receiver.wait_for(lambda b: any(x["state"] == "failed" for x in b))
    jobs = {b["job"] for b in bodies}
    assert jobs == {"jobs.Report.build"}, bodies
    states = [b["state"] for b in bodies]
    # The first run is OK (the ValueError is not a failure: OK again, no message), then the OSError.
    assert states[0] == "ok" and states[-1] == "failed", states
    assert "OSError: disk full" in bodies[-1]["error"]
    assert not any("bad input" in (b.get("error") or "") for b in bodies)


def test_a_coroutine_is_watched_and_main_scripts_are_named_by_their_path(receiver, run_script, tmp_path):
    run_script(
        f"""
        import asyncio, belfry
        belfry.init(urls=[{receiver.url!r}])

        @belfry.watch
        async def fetch():
            await asyncio.sleep(0)
            raise RuntimeError("upstream 503")

        try:
            asyncio.run(fetch())
        except RuntimeError:
            pass
        """
    )
    [alert] = receiver.wait_for(lambda b: len(b) >= 1)
    assert alert["job"] == f"{tmp_path / 'job.py'}:fetch"
    assert "RuntimeError: upstream 503" in alert["error"]


def test_a_decorated_call_returns_its_value_and_keeps_the_function_s_name():
    import belfry

    @belfry.watch
    def add(a: int, b: int) -> int:
        """Adds."""
        return a + b

    assert add(2, 3) == 5
    assert add.__name__ == "add" and add.__doc__ == "Adds."


def test_errors_must_be_exception_classes():
    import belfry
    import pytest

    with pytest.raises(TypeError, match="tuple of exception classes"):
        belfry.watch(errors=ValueError)  # type: ignore[arg-type]


def test_a_call_before_init_is_not_recorded_and_says_so_once(run_script):
    p = run_script(
        """
        import belfry

        @belfry.watch(name="early")
        def early():
            return 1

        early(); early()
        print(belfry.stats())
        """
    )
    assert p.stdout.strip() == "None"
    assert p.stderr.count("RuntimeWarning") == 1, p.stderr
    assert "belfry.init() has not been called" in p.stderr
