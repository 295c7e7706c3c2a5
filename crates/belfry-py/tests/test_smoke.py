import belfry

def test_import():
    assert callable(belfry.watch)
