from onestop.cli import main

raise SystemExit(main())
