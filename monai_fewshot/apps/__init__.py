"""MONAI Label app of monai_fewshot (``fewshot_label/``) and the script that builds its environment (``setup_env.sh``).

The app runs inside its own virtual environment (monailabel 0.8.5 pins torchvision and older DICOM packages);
nothing in the core package imports this folder, and importing it does not import monailabel.
"""
