namespace PgState.Tests.Infrastructure;

/// <summary>A fact that needs root and the SELinux tools; skipped with the reason otherwise.</summary>
public sealed class SelinuxFactAttribute : FactAttribute
{
    public SelinuxFactAttribute()
    {
        if (!ScratchCluster.IsRoot)
        {
            Skip = "needs root: semanage writes the policy store and setfiles writes security.selinux labels (run scripts/test.sh as root)";
        }
        else if (!File.Exists("/usr/sbin/semanage") || !File.Exists("/etc/selinux/config"))
        {
            Skip = "needs policycoreutils-python-utils and selinux-policy-default (scripts/test.sh installs them)";
        }
    }
}

/// <summary>A fact that needs root (it runs jobs as another user, installs packages …); skipped with the reason otherwise.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (!ScratchCluster.IsRoot)
        {
            Skip = "needs root: it runs jobs as the data directory's owner with setpriv, as systemd and cron do (run scripts/test.sh as root)";
        }
    }
}
