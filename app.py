"""RLA Explorer: ``python app.py [--pack PATH_OR_REPO]`` serves the app on 127.0.0.1:7860."""
from app.launch import main

if __name__ == "__main__":
    main()
