"""The few-shot MONAI Label app: ``monailabel start_server --app <this folder> --studies DIR``.

``main.py`` holds the :class:`MONAILabelApp` (loaded by the server from the file), ``infer.py`` the infer task.
Both import monailabel, so import them only inside the label environment (``monai_fewshot/apps/setup_env.sh``).
"""
