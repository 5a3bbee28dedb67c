def test_cli_refuses_evaluation_seeds_and_bad_scales(tmp_path, capsys):
    from core.cli import main

    out = str(tmp_path / "m")
    assert main(["train", "miniature", "--out", out, "--seed", "5"]) == 2
    assert "evaluation seed" in capsys.readouterr().err
    assert main(["train", "miniature", "--out", out, "--minutes-scale", "2"]) == 2
    assert "minutes_scale" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
