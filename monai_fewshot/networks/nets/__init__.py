from monai_fewshot.networks.nets.catnet import CATNet, CATNetOutput, catnet_light, catnet_paper
