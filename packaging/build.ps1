# Build the one-folder bundle on Windows: DIST\reasonany-gui\{reasonany-gui.exe, reasonany.exe, _internal\}.
#
#   powershell -ExecutionPolicy Bypass -File packaging\build.ps1 [-Dist DIR] [-Work DIR] [-NoTest] [-Zip]
#
# Uses the Python environment it runs in (the installed torch build, CPU or CUDA, is what ships).
# Install Pillow as well to give the executables the app icon (PyInstaller converts icon.png).
param(
    [string]$Dist = "",
    [string]$Work = "",
    [switch]$NoTest,
    [switch]$Zip
)
$ErrorActionPreference = "Stop"
$Root = Split-Path -Parent $PSScriptRoot
if (-not $Dist) { $Dist = Join-Path $Root "dist" }
if (-not $Work) { $Work = Join-Path $Root "build\pyinstaller" }
$Py = if ($env:PYTHON) { $env:PYTHON } else { "python" }

& $Py -c "import PyInstaller" 2>$null
if ($LASTEXITCODE -ne 0) {
    Write-Error "PyInstaller is not installed. Install it with: $Py -m pip install -e .[package]"
    exit 2
}
& $Py -c "import reasonany_gui, torch, transformers, PySide6, pyqtgraph"
if ($LASTEXITCODE -ne 0) { Write-Error "The app's dependencies are missing; run: $Py -m pip install -e ."; exit 2 }

Push-Location $Root
try {
    Write-Host "== PyInstaller: packaging\reasonany-gui.spec -> $Dist\reasonany-gui"
    & $Py -m PyInstaller --noconfirm --clean --log-level WARN --distpath $Dist --workpath $Work packaging\reasonany-gui.spec
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    $Bundle = Join-Path $Dist "reasonany-gui"

    if (-not $NoTest) {
        Write-Host "== self-test"
        $env:REASONANY_HOME = Join-Path ([System.IO.Path]::GetTempPath()) ("reasonany-selftest-" + [guid]::NewGuid())
        # the app is a windowed program: Start-Process -Wait is how to get its exit code
        $p = Start-Process -FilePath (Join-Path $Bundle "reasonany-gui.exe") -ArgumentList "--self-test" -Wait -PassThru
        if ($p.ExitCode -ne 0) { Write-Error "self-test failed ($($p.ExitCode)); see $env:REASONANY_HOME\logs\reasonany.log"; exit 1 }
        & (Join-Path $Bundle "reasonany.exe") --help | Out-Null
        if ($LASTEXITCODE -ne 0) { Write-Error "reasonany.exe --help failed"; exit 1 }
        Remove-Item -Recurse -Force $env:REASONANY_HOME
        Remove-Item Env:\REASONANY_HOME
    }

    $Size = (Get-ChildItem -Recurse $Bundle | Measure-Object -Property Length -Sum).Sum / 1MB
    Write-Host ("== bundle: {0} ({1:N0} MB)" -f $Bundle, $Size)
    if ($Zip) {
        $Version = & $Py -c "import reasonany_gui; print(reasonany_gui.__version__)"
        $Archive = Join-Path $Dist "reasonany-gui-$Version-windows-x86_64.zip"
        Compress-Archive -Path $Bundle -DestinationPath $Archive -Force
        Write-Host "== archive: $Archive"
    }
}
finally {
    Pop-Location
}
