using PgState.Engine.Host;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Packaging;

/// <summary>
/// Tests that change the machine itself (install a package in /usr/bin) or boot a container run alone,
/// after every other test: the example snapshots, for one, plan with and without /usr/bin/pgstate.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MachineWide
{
    public const string Name = "Machine-wide";
}

/// <summary>The .deb packaging/build.sh made ($PGSTATE_DEB, set by scripts/test.sh).</summary>
public static class InstalledPackage
{
    public static string? Deb => Environment.GetEnvironmentVariable("PGSTATE_DEB") is { Length: > 0 } p && File.Exists(p) ? p : null;

    public static string? DebSkipReason() =>
        Deb is null ? "PGSTATE_DEB is not set to a built .deb: scripts/test.sh builds the packages (packaging/build.sh) and sets it" : null;

    /// <summary>Why the .deb cannot be installed on this machine and removed again, leaving it as it was.</summary>
    public static string? HostSkipReason()
    {
        if (!ScratchCluster.IsRoot)
        {
            return "needs root: dpkg -i installs the package";
        }
        if (DebSkipReason() is { } reason)
        {
            return reason;
        }
        if (File.Exists("/usr/bin/pgstate") || File.Exists("/var/lib/dpkg/info/pgstate.list"))
        {
            return "pgstate is already installed on this machine (/usr/bin/pgstate): the test would replace and then remove it";
        }
        return null;
    }

    public static async Task InstallAsync()
    {
        var install = await ProcessRunner.Default.RunAsync("dpkg", ["-i", Deb!], TimeSpan.FromMinutes(2), check: false);
        Assert.True(install.ExitCode == 0, install.StandardOutput + install.StandardError);
    }

    public static async Task PurgeAsync()
    {
        var purge = await ProcessRunner.Default.RunAsync("dpkg", ["--purge", "pgstate"], TimeSpan.FromMinutes(2), check: false);
        Assert.True(purge.ExitCode == 0, purge.StandardOutput + purge.StandardError);
        Assert.False(File.Exists("/usr/bin/pgstate"));
    }
}

public sealed class InstalledPackageFactAttribute : FactAttribute
{
    public InstalledPackageFactAttribute() => Skip = InstalledPackage.HostSkipReason();
}

public sealed class SystemdContainerFactAttribute : FactAttribute
{
    public SystemdContainerFactAttribute() => Skip = InstalledPackage.DebSkipReason() ?? NspawnMachine.SkipReason();
}
