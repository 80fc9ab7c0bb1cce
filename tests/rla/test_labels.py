from rla.labels import LOWER_IS_BETTER, METRICS, method_label, short_label


def test_method_labels_name_steps_and_modes():
    assert method_label("rla@10") == "RLA-WM, 10 steps"
    assert method_label("regression") == "Direct regression (DINO-WM style)"
    assert method_label("something_new") == "something_new"
    assert short_label("rla@10 mean8") == "RLA-WM @10 mean8"
    assert short_label("token_flow zero") == "token flow zero"
    assert short_label("copy") == "copy (floor)"
    assert method_label("expert") == "Scripted expert (ceiling)" and method_label("random") == "Random plan (floor)"


def test_every_metric_has_a_direction():
    assert LOWER_IS_BETTER["token_l1_moving"] and not LOWER_IS_BETTER["psnr_fg"]
    assert METRICS["ssim"].arrow == "↑" and METRICS["lpips"].arrow == "↓"
    assert set(LOWER_IS_BETTER) == {"token_l1", "token_l1_moving", "ssim", "ssim_fg", "psnr", "psnr_fg", "gmsd_fg", "lpips", "energy"}


def test_method_labels_of_sampling_modes_keep_the_method_name():
    assert method_label("rla@3 zero") == "RLA-WM, 3 steps, zero"
    assert method_label("token_flow mean8") == "Token-space flow (FM-WM), mean8"
