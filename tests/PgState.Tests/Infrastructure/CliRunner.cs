using PgState.Cli;

namespace PgState.Tests.Infrastructure;

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs pgstate in-process (new Program(io)) and returns what it printed and its exit code.</summary>
public static class CliRunner
{
    /// <summary>
    /// Where this test run's "host" directories are (units, cron, locks, /etc/pgstate, credentials,
    /// state): a temporary directory, so no test reads or writes the machine's own. Tests may
    /// override any of them through the environment they pass.
    /// </summary>
    public static string HostRoot { get; } = CreateHostRoot();

    public static IReadOnlyDictionary<string, string> HostEnvironment { get; } = new Dictionary<string, string>
    {
        ["PGSTATE_UNIT_DIR"] = Path.Combine(HostRoot, "systemd"),
        ["PGSTATE_CRON_DIR"] = Path.Combine(HostRoot, "cron.d"),
        ["PGSTATE_LOCK_DIR"] = Path.Combine(HostRoot, "lock"),
        ["PGSTATE_CONFIG_DIR"] = Path.Combine(HostRoot, "etc"),
        ["PGSTATE_CREDENTIALS_DIR"] = Path.Combine(HostRoot, "credentials"),
        ["PGSTATE_STATE_DIR"] = Path.Combine(HostRoot, "state"),
    };

    private static string CreateHostRoot()
    {
        var root = Directory.CreateTempSubdirectory("pgstate-host-").FullName;
        File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return root;
    }

    public static async Task<CliResult> RunAsync(string[] args, IReadOnlyDictionary<string, string>? environment = null, string? input = null, bool terminal = false)
    {
        if (PgState.Engine.Host.Posix.IsRoot && IsJob(args))
        {
            // A job started as root becomes the data directory's owner for the rest of its process:
            // only a process of its own can, so these run as the program (the one that ships).
            var run = terminal
                ? await PgStateBinary.RunOnTerminalAsync(args, environment, TimeSpan.FromMinutes(10))
                : await PgStateBinary.RunAsync(args, environment, TimeSpan.FromMinutes(10));
            return new CliResult(run.ExitCode, run.StandardOutput, run.StandardError);
        }
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var env = new Dictionary<string, string>(HostEnvironment);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            env[k] = v;
        }
        var io = new IOContext(new StringReader(input ?? ""), stdout, stderr, terminal, terminal,
            name => env.TryGetValue(name, out var v) ? v : null, ErrorIsTerminal: terminal);
        var exit = await new Program(io).RunAsync(args);
        return new CliResult(exit, stdout.ToString(), stderr.ToString());
    }

    public static Task<CliResult> RunAsync(params string[] args) => RunAsync(args, null);

    /// <summary>The verbs that run as the job's user: backup run|verify, restore drill, restore.</summary>
    private static bool IsJob(string[] args) =>
        args.Length > 0 && (args[0] == "restore" || (args[0] == "backup" && args.Length > 1 && args[1] is "run" or "verify"));
}

/// <summary>A temporary directory for manifests and files a test writes.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("pgstate-t-").FullName;
        // Traversable by the server's user: backups and archives inside run as postgres.
        File.SetUnixFileMode(Path, (UnixFileMode)0b111_101_101);
    }

    public string Path { get; }

    public string Write(string name, string content)
    {
        var file = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
        File.WriteAllText(file, content);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
