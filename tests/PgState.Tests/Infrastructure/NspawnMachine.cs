using System.Diagnostics;
using System.Text;
using PgState.Engine.Host;

namespace PgState.Tests.Infrastructure;

/// <summary>
/// A Debian root filesystem booted with systemd as its PID 1 (systemd-nspawn -b), for tests that
/// need a real systemd: this machine's own PID 1 is not systemd, so machinectl cannot reach the
/// container; commands enter it with nsenter into its PID 1's namespaces. The root filesystem is
/// mounted --volatile=overlay (changes go to a tmpfs and vanish), the network is private (only
/// loopback), and the machine is powered off on dispose.
/// </summary>
public sealed class NspawnMachine : IAsyncDisposable
{
    /// <summary>The root filesystem scripts/systemd-rootfs.sh prepared (scripts/test.sh sets it).</summary>
    public static string? RootFilesystem => Environment.GetEnvironmentVariable("PGSTATE_TEST_ROOTFS") is { Length: > 0 } d && Directory.Exists(d) ? d : null;

    /// <summary>Why there is no root filesystem, as scripts/systemd-rootfs.sh recorded it.</summary>
    public static string? SkipReason()
    {
        if (!ScratchCluster.IsRoot)
        {
            return "needs root: systemd-nspawn boots a container";
        }
        if (!File.Exists("/usr/bin/systemd-nspawn") || !File.Exists("/usr/bin/nsenter"))
        {
            return "needs systemd-nspawn (package systemd-container) and nsenter (util-linux); scripts/test.sh installs them";
        }
        if (RootFilesystem is null)
        {
            var reason = Environment.GetEnvironmentVariable("PGSTATE_TEST_ROOTFS_SKIP");
            return "no bookworm root filesystem to boot: " + (reason is { Length: > 0 } r ? r : "PGSTATE_TEST_ROOTFS is not set (scripts/test.sh runs scripts/systemd-rootfs.sh and sets it)");
        }
        return null;
    }

    private readonly Process _nspawn;
    private readonly StringBuilder _console;
    private readonly bool _runSystemdExisted;

    private NspawnMachine(Process nspawn, StringBuilder console, string name, int pid, bool runSystemdExisted)
    {
        _nspawn = nspawn;
        _console = console;
        Name = name;
        Pid = pid;
        _runSystemdExisted = runSystemdExisted;
    }

    public string Name { get; }

    /// <summary>The container's PID 1 (systemd), as this machine sees it.</summary>
    public int Pid { get; }

    public string Console
    {
        get
        {
            lock (_console)
            {
                return _console.ToString();
            }
        }
    }

    /// <summary>Boots the root filesystem and waits until systemd reports the system running (or degraded).</summary>
    public static async Task<NspawnMachine> BootAsync(string rootFilesystem, IReadOnlyList<(string Host, string Container)> readOnlyBinds, TimeSpan timeout)
    {
        var name = "pgstate-test-" + Guid.NewGuid().ToString("N")[..8];
        var runSystemdExisted = Directory.Exists("/run/systemd");
        var start = new ProcessStartInfo("systemd-nspawn")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        // --keep-unit and --register=no: there is no systemd on this machine to make a scope or register a machine with.
        foreach (var arg in new[] { "--quiet", "--boot", "--directory", rootFilesystem, "--volatile=overlay", "--private-network", "--register=no", "--keep-unit",
                     "--machine", name, "--console=pipe" })
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (host, container) in readOnlyBinds)
        {
            start.ArgumentList.Add($"--bind-ro={host}:{container}");
        }
        var process = Process.Start(start)!;
        var console = new StringBuilder();
        void Collect(object? _, DataReceivedEventArgs e)
        {
            if (e.Data is { } line)
            {
                lock (console)
                {
                    console.AppendLine(line);
                }
            }
        }
        process.OutputDataReceived += Collect;
        process.ErrorDataReceived += Collect;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + timeout;
        int? pid = null;
        while (pid is null && DateTime.UtcNow < deadline && !process.HasExited)
        {
            pid = Children(process.Id).Where(c => ReadOrNull($"/proc/{c}/comm")?.Trim() == "systemd").Select(c => (int?)c).FirstOrDefault();
            if (pid is null)
            {
                await Task.Delay(100);
            }
        }
        if (pid is null)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"systemd-nspawn did not start systemd in {timeout.TotalSeconds:0} s: {console}");
        }
        var machine = new NspawnMachine(process, console, name, pid.Value, runSystemdExisted);
        string state;
        var last = "";
        do
        {
            // is-system-running --wait fails while the container's D-Bus is not up yet: retry until the deadline.
            var result = await machine.RunAsync(["systemctl", "is-system-running", "--wait"], timeout: deadline - DateTime.UtcNow + TimeSpan.FromSeconds(1));
            state = result.StandardOutput.Trim();
            last = $"exit {result.ExitCode}: {result.StandardError.Trim()}";
            if (state is "running" or "degraded")
            {
                return machine;
            }
            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);
        await machine.DisposeAsync();
        throw new InvalidOperationException($"the container did not reach multi-user.target in {timeout.TotalSeconds:0} s (state: {state}; systemctl is-system-running: {last}): {machine.Console}");
    }

    /// <summary>Runs a command inside the container (all of PID 1's namespaces, a clean environment, as root).</summary>
    public Task<ProcessResult> RunAsync(IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        List<string> args = ["--target", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "--all", "env", "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0",
            .. (environment ?? new Dictionary<string, string>()).Select(e => $"{e.Key}={e.Value}"), .. command];
        return ProcessRunner.Default.RunAsync("nsenter", args, timeout ?? TimeSpan.FromMinutes(2), check: false);
    }

    /// <summary>Runs a command and fails the test, with its output, unless it exits 0.</summary>
    public async Task<ProcessResult> RunOkAsync(params string[] command)
    {
        var result = await RunAsync(command);
        Assert.True(result.ExitCode == 0, $"in the container: {string.Join(' ', command)} exited {result.ExitCode}\n{result.StandardOutput}\n{result.StandardError}");
        return result;
    }

    /// <summary>systemctl show -p … as a dictionary.</summary>
    public async Task<IReadOnlyDictionary<string, string>> ShowAsync(string unit, params string[] properties)
    {
        var result = await RunOkAsync(["systemctl", "show", .. properties.SelectMany(p => new[] { "-p", p }), "--", unit]);
        return result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        // SIGTERM asks nspawn to shut the container down cleanly (systemd gets SIGRTMIN+3).
        if (!_nspawn.HasExited)
        {
            await ProcessRunner.Default.RunAsync("kill", ["-TERM", _nspawn.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], check: false);
        }
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await _nspawn.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            _nspawn.Kill(entireProcessTree: true);
            await _nspawn.WaitForExitAsync();
        }
        _nspawn.Dispose();
        // nspawn cannot remove its propagation directory where /run is not a tmpfs; nor, where it made
        // /run/systemd itself, the empty runtime directories it created there. Leave the machine as it was.
        TryDelete($"/run/systemd/nspawn/propagate/{Name}");
        if (!_runSystemdExisted && !Directory.Exists("/run/systemd/system")
            && !(Directory.Exists("/run/systemd/nspawn/propagate") && Directory.EnumerateFileSystemEntries("/run/systemd/nspawn/propagate").Any()))
        {
            TryDelete("/run/systemd");
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static IEnumerable<int> Children(int pid) =>
        Directory.Exists($"/proc/{pid}/task")
            ? Directory.GetDirectories($"/proc/{pid}/task")
                .SelectMany(t => (ReadOrNull(Path.Combine(t, "children")) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Select(c => int.Parse(c, System.Globalization.CultureInfo.InvariantCulture))
            : [];

    private static string? ReadOrNull(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
    }
}
