"""`python -m onestop_agent`, also the entry script of the PyInstaller build."""

from onestop_agent.cli import main

if __name__ == "__main__":
    main()
