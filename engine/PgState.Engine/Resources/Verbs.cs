using PgState.Engine.Host;
using PgState.Engine.Manifests;

namespace PgState.Engine.Resources;

public enum VerbParameterKind
{
    /// <summary>A positional argument.</summary>
    Argument,

    /// <summary>--name VALUE.</summary>
    Option,

    /// <summary>--name (true when given).</summary>
    Flag,
}

public sealed record VerbParameter(string Name, string Description, VerbParameterKind Kind, bool Required = false, string? Default = null,
    IReadOnlyList<string>? Allowed = null, string? HelpName = null);

/// <summary>How a verb names its manifests: not at all, as FILE… arguments, or with --manifest FILE….</summary>
public enum VerbManifests
{
    None,
    Files,
    ManifestOption,
}

/// <summary>A host as a verb sees it: the manifest, its bound modules and facts.</summary>
public sealed record VerbHost(HostManifest Host, IReadOnlyList<IBound> Modules, FactBag Facts, HostPaths Paths);

/// <summary>What a verb runs with. Data goes to Out, progress to Error; the CLI turns the int into the exit code.</summary>
public sealed class VerbContext(
    IReadOnlyDictionary<string, object?> values,
    IReadOnlyList<VerbHost> hosts,
    Func<VerbHost, CancellationToken, Task<IHostSession>> connect,
    TextWriter output,
    TextWriter error,
    Func<string, string?> environment,
    bool errorIsTerminal,
    bool ownsProcess = false)
{
    public IReadOnlyList<VerbHost> Hosts => hosts;

    public TextWriter Output => output;

    public TextWriter Error => error;

    public Func<string, string?> Environment => environment;

    /// <summary>True when stderr is a terminal (progress bars, pg_basebackup -P).</summary>
    public bool ErrorIsTerminal => errorIsTerminal;

    public string? String(string name) => values.GetValueOrDefault(name) as string;

    public bool Flag(string name) => values.GetValueOrDefault(name) is true;

    public Task<IHostSession> ConnectAsync(VerbHost host, CancellationToken cancellationToken) => connect(host, cancellationToken);

    /// <summary>
    /// A job (backup run, restore drill, restore) started as root becomes the user it works for, for
    /// the rest of the process, before it touches a file: everything it then creates, follows or
    /// deletes in that user's directories is done with that user's rights only (a link planted there
    /// cannot make root write elsewhere), and every file it leaves belongs to that user. Only a
    /// process of its own can do this: a host that runs pgstate in-process (a test) gets an error
    /// instead of losing its own rights. A job not started as root is left as it is.
    /// </summary>
    public void BecomeJobUser(string user, string group)
    {
        if (!Posix.IsRoot)
        {
            return;
        }
        if (!ownsProcess)
        {
            throw new Diagnostics.PgStateException($"this job runs as {user}; started as root it becomes {user}, which only the pgstate program itself can do");
        }
        Posix.BecomeUser(user, group);
        if (ErrorIsTerminal)
        {
            Error.WriteLine($"pgstate: started as root: running as {user}, the data directory's owner, from here on");
        }
    }
}

/// <summary>A command a module contributes (hba test, backup run …), so that the CLI names no module type.</summary>
public sealed record Verb(
    IReadOnlyList<string> Path,
    string Description,
    IReadOnlyList<VerbParameter> Parameters,
    VerbManifests Manifests,
    Func<VerbContext, CancellationToken, Task<int>> Run);

public interface IVerbProvider
{
    IReadOnlyList<Verb> Verbs { get; }
}
