using PgState.Engine.Host;

namespace PgState.Tests.Infrastructure;

/// <summary>
/// The pgstate executable the end-to-end tests run: $PGSTATE_BINARY (scripts/test.sh publishes the
/// Native AOT binary, the one that ships, and sets it), else the JIT build beside the tests.
/// </summary>
public static class PgStateBinary
{
    public static string Path { get; } =
        Environment.GetEnvironmentVariable("PGSTATE_BINARY") is { Length: > 0 } p && File.Exists(p)
            ? p
            : System.IO.Path.Combine(AppContext.BaseDirectory, "pgstate");

    public static bool IsNativeAot => !File.Exists(System.IO.Path.ChangeExtension(Path, ".dll"));

    /// <summary>Runs the binary with the test run's host directories (units, locks …) in its environment.</summary>
    public static Task<ProcessResult> RunAsync(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null) =>
        ProcessRunner.Default.RunAsync(Path, args, timeout ?? TimeSpan.FromSeconds(60), check: false, environment: TestEnvironment(environment));

    /// <summary>
    /// Runs the binary with its stderr on a terminal (script(1) gives it a pseudo-terminal; stdout goes
    /// to a file): what an operator at a terminal sees. Stdin is /dev/null.
    /// </summary>
    public static async Task<ProcessResult> RunOnTerminalAsync(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        var stdout = System.IO.Path.GetTempFileName();
        try
        {
            var command = string.Join(' ', new[] { Path }.Concat(args).Select(Quote)) + " >" + Quote(stdout) + " </dev/null";
            var run = await ProcessRunner.Default.RunAsync("script", ["-qefc", command, "/dev/null"], timeout ?? TimeSpan.FromSeconds(60), check: false,
                environment: TestEnvironment(environment));
            return new ProcessResult(run.ExitCode, await File.ReadAllTextAsync(stdout), run.StandardOutput.Replace("\r\n", "\n", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(stdout);
        }
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static Dictionary<string, string?> TestEnvironment(IReadOnlyDictionary<string, string>? environment)
    {
        var env = new Dictionary<string, string?>();
        foreach (var (k, v) in CliRunner.HostEnvironment)
        {
            env[k] = v;
        }
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            env[k] = v;
        }
        return env;
    }
}
