from monai_fewshot.losses.catnet_loss import CATNetLoss
