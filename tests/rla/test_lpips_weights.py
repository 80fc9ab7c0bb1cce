import pytest
import torch
import torchvision

from rla.metrics import load_lpips, lpips_distance


def test_lpips_loads_alexnet_weights_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    alexnet = torchvision.models.alexnet()
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(alexnet.state_dict(), path)
    model = load_lpips(path)
    assert torch.equal(model.net.slice1[0].weight, alexnet.features[0].weight)
    assert torch.equal(model.net.state_dict()["slice5.10.weight"], alexnet.features[10].weight)
    img = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    other = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    assert lpips_distance(model, img, img).abs().max() < 1e-6
    assert (lpips_distance(model, img, other) > 0).all()
    with pytest.raises(FileNotFoundError, match="not found"):
        load_lpips(tmp_path / "missing.pth")
